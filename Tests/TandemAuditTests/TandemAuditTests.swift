import Testing
import TandemAudit
