import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build lands in the Python package that serves it (ledgerflow.services.ui) and ships
// in the wheel; `npm run dev` proxies the API to a local `ledgerflow ui` on port 5000.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "../services/ui/static",
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 400,
  },
  server: { proxy: { "/api": "http://127.0.0.1:5000" } },
});
