import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 }
      },
      {
        // Real relay and Node peers over WebRTC: one file at a time on a 2-core machine.
        test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 60_000, fileParallelism: false }
      },
      {
        // Real Chromium tabs against the built app served by the real relay.
        test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 180_000, hookTimeout: 90_000, fileParallelism: false }
      }
    ]
  }
})
