#!/usr/bin/env node
// The npm bin: loads the TypeScript sources through tsx. Sites that want no TypeScript loader at
// run time use the bundle (npm run build → dist/runner-token-refresh.mjs and dist/chunks/).
import { register } from "tsx/esm/api";

register();
await import("../src/main.node.ts");
