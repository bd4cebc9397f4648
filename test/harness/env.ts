import type {} from 'vitest';
import type { TestEnv } from './environment.js';

export type { TestEnv } from './environment.js';

// What test/harness/global-setup.ts provides; read it in a test with `inject('testEnv')`.
declare module 'vitest' {
  export interface ProvidedContext {
    testEnv: TestEnv;
  }
}
