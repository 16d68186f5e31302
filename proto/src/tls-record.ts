/**
 * True when `b` starts like a TLS record (content type 20..23, major version
 * 3, RFC 8446 5.1): what a tls:// client sends first (a ClientHello, 0x16
 * 0x03) or a TLS server answers (an alert, 0x15 0x03). A meshbus frame
 * cannot start so: its first 4 bytes are its length (SPEC 3.1), and
 * 0x14000000 and up is past every frame limit (9.1). The node (a TLS client
 * on a plain port) and the Node SDK (a TLS server where a frame was
 * expected) both ask.
 */
export function isTlsRecord(b: Uint8Array): boolean {
  return b.length >= 2 && b[0]! >= 0x14 && b[0]! <= 0x17 && b[1] === 3;
}
