#ifndef TANDEM_COPENSSL_SHIM_H
#define TANDEM_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/bio.h>

// Macros Swift cannot import.
static inline long ctandem_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long ctandem_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long ctandem_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline int ctandem_BIO_pending(BIO *b) { return (int)BIO_ctrl_pending(b); }

// Ed25519 (the audit log's tree-head signatures): EVP_PKEY_ED25519 is a macro over a macro.
static inline int ctandem_EVP_PKEY_ED25519(void) { return EVP_PKEY_ED25519; }
#endif
