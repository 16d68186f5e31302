import { HEADER_SIZE, MAX_EXT } from '@meshbus/proto';

/** Largest payload this client accepts from a node (a node announces its own, smaller limit for publishes). */
export const CLIENT_MAX_PAYLOAD = 64 * 1024 * 1024;

/**
 * Largest frame this client reads once connected: its decoder's limit
 * (connection.ts), and the Node entry's limit on a WebSocket message (a
 * node sends a frame larger than 64 KiB in a message of its own).
 */
export const MAX_FRAME = HEADER_SIZE + 0xffff + MAX_EXT + CLIENT_MAX_PAYLOAD;
