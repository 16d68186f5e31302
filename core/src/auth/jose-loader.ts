/** The jose module (JWT/JWS/JWKS), typed. */
export type Jose = typeof import('jose');

let jose: Promise<Jose> | undefined;

/**
 * jose, imported on first use: nodes and tools that never verify or sign a
 * JWT do not load it. One import per process, shared.
 */
export function loadJose(): Promise<Jose> {
  jose ??= import('jose');
  return jose;
}
