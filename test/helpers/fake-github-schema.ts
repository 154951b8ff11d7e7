// Checks the fake's own responses against GitHub's published OpenAPI description, so the fake
// cannot drift into answering in shapes the real API never uses.
import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import type { ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { FormatsPlugin } from "ajv-formats";

interface Fixture {
  basicError: object;
  operations: Record<string, { responses: Record<string, { schema: object | null }> }>;
}

// ajv-formats is CommonJS; depending on the loader (tsx, Deno) the default import is either the
// plugin itself or the module object holding it under `default`.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  addFormatsModule) as unknown as FormatsPlugin;

/** `op` is the OpenAPI key, e.g. "GET /orgs/{org}/actions/runners". Returns null when valid. */
export type ResponseValidator = (op: string, status: number, body: unknown) => string | null;

export function loadResponseValidator(): ResponseValidator {
  const fixture = JSON.parse(
    readFileSync(new URL("../fixtures/github-openapi-runners.json", import.meta.url), "utf8"),
  ) as Fixture;
  // Ajv 8 understands OpenAPI's `nullable: true` natively (it widens `type` to include null),
  // so the fixture's schemas are used exactly as published.
  const ajv = new Ajv({ strict: true, allErrors: true });
  addFormats(ajv);
  const compiled = new Map<string, ValidateFunction | null>();
  const compile = (key: string, schema: object | null): ValidateFunction | null => {
    if (!compiled.has(key)) compiled.set(key, schema === null ? null : ajv.compile(schema));
    return compiled.get(key) ?? null;
  };

  return (op, status, body) => {
    const declared = fixture.operations[op]?.responses[String(status)];
    if (declared && declared.schema === null) {
      return body === undefined || body === null ? null : `${op} ${status}: declared without a body`;
    }
    let validate: ValidateFunction | null;
    if (declared) validate = compile(`${op} ${status}`, declared.schema);
    else if (status >= 400) validate = compile("basicError", fixture.basicError);
    else if (fixture.operations[op]) return `${op}: status ${status} is not a documented response`;
    else return null; // an operation outside the excerpt (App auth): nothing to check against
    if (validate && !validate(body)) {
      return `${op} ${status}: ${ajv.errorsText(validate.errors)}`;
    }
    return null;
  };
}
