import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration and e2e tests open real sockets and spawn processes; forks isolate them cleanly.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
