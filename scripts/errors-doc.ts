// Prints docs/ERRORS.md from the catalogue (src/shared/reasons.ts).
// Usage: npm run docs:errors   (writes docs/ERRORS.md)

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ERROR_DOMAIN, REASONS, type Reason } from "../src/shared/reasons.ts";

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function errorsDoc(): string {
  const rows = (Object.keys(REASONS) as Reason[]).map((r) => {
    const i = REASONS[r];
    return `| \`${r}\` | ${i.kind.toUpperCase()} | ${cell(i.when)} | ${cell(i.action)} |`;
  });
  return `# Errors

<!-- Generated from src/shared/reasons.ts by \`npm run docs:errors\`; edit the catalogue, not this file.
     test/contract/errors-catalogue.test.ts fails when they differ. -->

Every error the API returns, on gRPC, gRPC-Web and Connect alike, carries a
\`google.rpc.ErrorInfo\` detail with \`domain\` \`${ERROR_DOMAIN}\` and a stable UPPER_SNAKE
\`reason\` from the table below. Match on the reason, never on the message text (which is
English for developers and may change). A reason, once published, keeps its name and its code.

- INVALID_ARGUMENT also carries \`google.rpc.BadRequest\` listing **every** violation of the
  request, not only the first. Each \`FieldViolation\` has \`field\` (the proto field path, e.g.
  \`attachments[0].url\`), \`description\`, and \`reason\` (the protovalidate rule id, e.g.
  \`string.uuid\`, \`string.max_len\`, \`repeated.max_items\`, one of the project's text rules
  such as \`text.no_control\`, or a message rule id such as \`after_seq.exclusive\`). The rules
  themselves are in the proto files (\`buf.validate\` options, protovalidate), so generated clients
  can check before sending; docs/CLIENTS.md ("Input rules") lists them and how to read violations.
  A few checks need the server's configuration or state (\`MESSAGE_MAX_CHARS\`, a channel name
  when the stored conversation is a channel, ...): they answer the same way, with one violation.
- RESOURCE_EXHAUSTED for rate limits also carries \`google.rpc.RetryInfo\` (and ErrorInfo
  metadata \`retry_after_ms\`).
- On a \`Stream\`, a failed frame is answered by a \`StreamError\` frame with the same
  \`code\`, \`reason\`, \`metadata\` and \`field_violations\`; the stream stays open. A stream that
  ends with an error ends with a status carrying the same ErrorInfo.
- Reading the details: grpc-go \`status.FromError(err).Details()\`; connect-es
  \`err.findDetails(ErrorInfoSchema)\`; grpcurl prints them; Connect JSON has them base64 in
  \`details[].value\` with \`type\` \`google.rpc.ErrorInfo\` (and \`debug\` decoded where enabled).

| reason | code | when | what a client should do |
|---|---|---|---|
${rows.join("\n")}
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL("../docs/ERRORS.md", import.meta.url), errorsDoc());
}
