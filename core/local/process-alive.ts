/** Whether a process (or, negative, a process group) exists: signal 0 probes it; EPERM means it exists as another user. */
export function processAlive(pidOrGroup: number): boolean {
  try {
    process.kill(pidOrGroup, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
