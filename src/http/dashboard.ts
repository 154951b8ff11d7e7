/**
 * The collector's HTML pages (SPEC 9, issue 19), rendered on the server from the fleet view:
 * the fleet page (pages/fleet.ts), a page per runner and per host, kept live over Server-Sent
 * Events (sse.ts). This module keeps the names other code and tests import.
 */
export { renderDashboard, type DashboardInput } from "./pages/fleet.ts";
export { esc, formatDuration, tokenLeft } from "./pages/layout.ts";
