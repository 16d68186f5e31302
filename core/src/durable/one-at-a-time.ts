/**
 * `task` made into a trigger that runs it one at a time: asked while it
 * runs, it runs once more after it ends, however many times it was asked
 * meanwhile. What it reads is then at most one run old, and a storm of
 * triggers (a notice per node, a timer) costs two runs, not one per trigger.
 * `task` reports its own failures: its rejection is dropped here.
 */
export function oneAtATime(task: () => Promise<unknown>): () => void {
  let running = false;
  let again = false;
  const run = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    task()
      .catch(() => {})
      .finally(() => {
        running = false;
        if (again) run();
      });
  };
  return run;
}
