/**
 * How each runner status looks, wherever it is shown: the dashboard, the `status` command and the
 * Grafana dashboard (docs/grafana-dashboard.json, checked by test/grafana-dashboard.test.ts) use
 * these names and colours, so "failing" is the same red everywhere.
 */
export const STATUS_COLOURS = {
  ok: "#1e7d32",
  refreshing: "#1565c0",
  deferred_busy: "#b26a00",
  failing: "#b3261e",
  unregistered: "#b3261e",
  held: "#5f6b7a",
  stale: "#6a1b9a",
} as const;

export type LookedStatus = keyof typeof STATUS_COLOURS;

/** The nearest of the terminal's 8 colours (SGR foreground codes) for the same statuses. */
export const STATUS_ANSI: Record<LookedStatus, number> = {
  ok: 32,
  refreshing: 34,
  deferred_busy: 33,
  failing: 31,
  unregistered: 31,
  held: 90,
  stale: 35,
};

/** `text` in the status's terminal colour. */
export function ansiStatus(status: string, text = status): string {
  const code = (STATUS_ANSI as Record<string, number>)[status];
  return code === undefined ? text : `\u001b[${code}m${text}\u001b[0m`;
}
