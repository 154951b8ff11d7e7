// node:test's `test`, with a time limit on every test. On Node 20 `--test-timeout` bounds only a
// whole file (its child process), so one hung test used to cost the whole file's results and
// ten minutes of CI. Here a test that hangs fails on its own, by name, and the file goes on.
import { test as nodeTest, after, before, type TestContext } from "node:test";

export { after, before };

/** Longer than any test needs on a loaded 2-core CI machine; a test that needs more says so. */
export const TEST_TIME_LIMIT_MS = 240_000;

type Body = (t: TestContext) => void | Promise<void>;
interface Options {
  timeout?: number;
  skip?: boolean | string;
}

export function test(name: string, body: Body): Promise<void>;
export function test(name: string, options: Options, body: Body): Promise<void>;
export function test(name: string, a: Body | Options, b?: Body): Promise<void> {
  const [options, body] = typeof a === "function" ? [{}, a] : [a, b!];
  return nodeTest(name, { timeout: TEST_TIME_LIMIT_MS, ...options }, body);
}
