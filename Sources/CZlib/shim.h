#ifndef TANDEM_CZLIB_SHIM_H
#define TANDEM_CZLIB_SHIM_H
#include <zlib.h>
// deflateInit2/inflateInit2 are macros; Swift cannot call them directly.
static inline int czlib_deflateInit2(z_streamp strm, int level, int windowBits, int memLevel, int strategy) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, memLevel, strategy);
}
static inline int czlib_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
