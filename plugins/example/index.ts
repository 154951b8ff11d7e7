/**
 * The smallest useful plugin, the one plugins/README.md walks through: it POSTs
 * `{"text": "<prefix> [FIRING] …", "key": …, "status": …}` to a URL. Copy it to start a new channel.
 * Outside this repository, import from "runner-token-refresh/plugin" instead of the relative path.
 */
import { AlertDeliveryError, definePlugin, headline, Options } from "../../src/alerts/sdk.ts";

export interface ExampleOptions {
  url: string;
  prefix: string;
}

export default definePlugin<ExampleOptions>({
  name: "example",

  // Runs when the config loads: a typo or a wrong type stops the program before any alert fires.
  parseOptions(raw) {
    const o = new Options(raw);
    const options = { url: o.url("url"), prefix: o.string("prefix", { default: "[alert]" }) };
    o.done(); // rejects keys nobody read ("prefx")
    return options;
  },

  create(options, ctx) {
    return {
      // One attempt. The host retries, times out (through `signal`), logs and counts.
      async send(n, signal) {
        const body = JSON.stringify({ text: `${options.prefix} ${headline(n)}`, key: n.key, status: n.status });
        let res: Response;
        try {
          res = await ctx.fetch(options.url, { method: "POST", headers: { "content-type": "application/json" }, body, signal });
          await res.text();
        } catch (err) {
          // Network trouble or the host's deadline: worth another try. Never put the URL in a message.
          throw new AlertDeliveryError(signal.aborted ? "example receiver did not answer in time" : "example receiver unreachable", { retryable: true, cause: err });
        }
        if (res.ok) return;
        const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
        const wait = Number(res.headers.get("retry-after"));
        throw new AlertDeliveryError(`example receiver answered ${res.status}`, { retryable, retryAfterSeconds: Number.isInteger(wait) && wait > 0 ? wait : undefined });
      },
    };
  },
});
