export async function traceCommand(_args: string[]): Promise<number> {
  process.stderr.write('meshbus trace: not available in this build\n');
  return 1;
}
