import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Built into dist/ui and served by Twoway at /ui/ (src/http/ui.ts). The manifest lets
// scripts/ui-budget.mjs find what the first page load fetches.
export default defineConfig({
  root: import.meta.dirname,
  base: '/ui/',
  plugins: [react()],
  build: {
    outDir: '../dist/ui',
    emptyOutDir: true,
    manifest: true,
    // The polyfill would be the only code outside our chunks; every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
});
