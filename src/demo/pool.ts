/**
 * The demo's pool of two ephemeral JIT runners (SPEC 14): a template whose run.sh plays the
 * runner started with a JIT config (decodes it, goes online at the simulated GitHub, runs one
 * job, deregisters, exits), and the user its jobs run as. Jobs run as another user than the
 * agent (SPEC 15), so the pool part needs the demo to run as root; `nobody` stands in for the
 * jobs' user there. The template's scripts are written by sandbox.ts, with the other stand-ins.
 */
import type { Runtime } from "../runtime/types.ts";
import { lookupUser } from "../privsep/users.ts";


/** The user the demo pool's jobs run as, or why there is no pool in this demo. */
export async function demoPoolUser(runtime: Runtime): Promise<{ user: string } | { skip: string }> {
  if (runtime.uid() !== 0) return { skip: "the pool part needs root (pool jobs run as another user than the agent)" };
  if (!/(^|\/)node$/.test(runtime.execPath)) return { skip: "the pool part runs under node only" };
  const nobody = await lookupUser(runtime, "nobody");
  return nobody ? { user: "nobody" } : { skip: 'no user "nobody" for the pool\'s jobs' };
}
