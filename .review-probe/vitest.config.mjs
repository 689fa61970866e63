export default { test: { include: ['.review-probe/*.test.ts'], testTimeout: 30000, hookTimeout: 60000, pool: 'forks' } };
