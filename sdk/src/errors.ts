import { ClientError, isMeshbusError, type MeshbusError } from '@meshbus/proto';

/** `e` as a MeshbusError: itself when it is one, else a ClientError MB_ERR_INVALID_ARGUMENT carrying it as `cause`. */
export function asError(e: unknown): MeshbusError {
  if (isMeshbusError(e)) return e;
  return new ClientError('MB_ERR_INVALID_ARGUMENT', String((e as Error)?.message ?? e), { cause: e });
}

/** Runs `fn`; returns what it threw (as a MeshbusError), or undefined. */
export function safely(fn: () => void): MeshbusError | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return asError(e);
  }
}
