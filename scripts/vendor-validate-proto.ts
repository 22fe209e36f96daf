// Writes proto/buf/validate/validate.proto from the descriptor that the
// installed @bufbuild/protovalidate embeds, so the vendored schema is exactly
// the one the validator enforces (the BSR is not reachable here, and the npm
// package ships no .proto). Comments are not in the embedded descriptor; see
// the protovalidate documentation for the rules' prose. The output compiles to
// the embedded descriptor byte for byte (checked when it was vendored: buf
// build of the file vs file_buf_validate_validate.proto; gen/ then embeds the
// same descriptor string as the package).
//
// Usage: sh scripts/node.sh node scripts/vendor-validate-proto.ts

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { getExtension, hasExtension, isFieldSet } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FieldOptions,
  FieldDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { file_buf_validate_validate, predefined, RuleSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const file = file_buf_validate_validate.proto;
// The package's exports hide package.json: find it from the resolved entry point.
const entry = createRequire(import.meta.url).resolve("@bufbuild/protovalidate");
const version = JSON.parse(readFileSync(new URL("../../package.json", `file://${entry}`), "utf8")).version as string;

const q = (s: string) => JSON.stringify(s);
const SCALAR: Partial<Record<Type, string>> = {
  [Type.DOUBLE]: "double", [Type.FLOAT]: "float", [Type.INT64]: "int64", [Type.UINT64]: "uint64", [Type.INT32]: "int32",
  [Type.FIXED64]: "fixed64", [Type.FIXED32]: "fixed32", [Type.BOOL]: "bool", [Type.STRING]: "string", [Type.BYTES]: "bytes",
  [Type.UINT32]: "uint32", [Type.SFIXED32]: "sfixed32", [Type.SFIXED64]: "sfixed64", [Type.SINT32]: "sint32", [Type.SINT64]: "sint64",
};

function typeName(f: FieldDescriptorProto): string {
  if (f.type === Type.MESSAGE || f.type === Type.ENUM) {
    const n = f.typeName.replace(/^\./, "");
    return n.startsWith("buf.validate.") ? n.slice("buf.validate.".length) : n;
  }
  return SCALAR[f.type]!;
}

function fieldOptions(o: FieldOptions | undefined): string {
  if (!o) return "";
  const parts: string[] = [];
  if (o.deprecated) parts.push("deprecated = true");
  if (hasExtension(o, predefined)) {
    for (const r of getExtension(o, predefined).cel) {
      const inner = [
        isFieldSet(r, RuleSchema.field.id) ? `id: ${q(r.id)}` : "",
        isFieldSet(r, RuleSchema.field.message) ? `message: ${q(r.message)}` : "",
        isFieldSet(r, RuleSchema.field.expression) ? `expression: ${q(r.expression)}` : "",
      ].filter(Boolean);
      parts.push(`(predefined).cel = {\n      ${inner.join("\n      ")}\n    }`);
    }
  }
  return parts.length ? ` [\n    ${parts.join(",\n    ")}\n  ]` : "";
}

function ranges(rs: { start: number; end: number }[], exclusiveEnd: boolean): string {
  const MAX = 536870912;
  return rs
    .map(({ start, end }) => {
      const last = exclusiveEnd ? end - 1 : end;
      if (end >= MAX && exclusiveEnd) return `${start} to max`;
      return last === start ? `${start}` : `${start} to ${last}`;
    })
    .join(", ");
}

function printEnum(e: EnumDescriptorProto, indent: string): string {
  const out = [`${indent}enum ${e.name} {`];
  for (const v of e.value) out.push(`${indent}  ${v.name} = ${v.number}${v.options?.deprecated ? " [deprecated = true]" : ""};`);
  if (e.reservedRange.length) out.push(`${indent}  reserved ${ranges(e.reservedRange, false)};`);
  if (e.reservedName.length) out.push(`${indent}  reserved ${e.reservedName.map(q).join(", ")};`);
  out.push(`${indent}}`);
  return out.join("\n");
}

function printField(f: FieldDescriptorProto, indent: string, inOneof: boolean): string {
  const label = inOneof ? "" : f.label === Label.REPEATED ? "repeated " : f.label === Label.REQUIRED ? "required " : "optional ";
  const body = `${label}${typeName(f)} ${f.name} = ${f.number}${fieldOptions(f.options)};`;
  return body
    .split("\n")
    .map((l) => indent + l)
    .join("\n");
}

function printMessage(m: DescriptorProto, indent: string): string {
  const out = [`${indent}message ${m.name} {`];
  for (const e of m.enumType) out.push(printEnum(e, indent + "  "));
  for (const n of m.nestedType) out.push(printMessage(n, indent + "  "));
  const done = new Set<number>();
  // proto2 descriptor fields read as their default when unset: ask whether oneof_index is set.
  const inOneof = (f: FieldDescriptorProto) => isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) && !f.proto3Optional;
  m.field.forEach((f) => {
    if (inOneof(f)) {
      if (done.has(f.oneofIndex)) return;
      done.add(f.oneofIndex);
      out.push(`${indent}  oneof ${m.oneofDecl[f.oneofIndex].name} {`);
      for (const g of m.field.filter((x) => inOneof(x) && x.oneofIndex === f.oneofIndex)) out.push(printField(g, indent + "    ", true));
      out.push(`${indent}  }`);
      return;
    }
    out.push(printField(f, indent + "  ", false));
  });
  if (m.extensionRange.length) out.push(`${indent}  extensions ${ranges(m.extensionRange, true)};`);
  if (m.reservedRange.length) out.push(`${indent}  reserved ${ranges(m.reservedRange, true)};`);
  if (m.reservedName.length) out.push(`${indent}  reserved ${m.reservedName.map(q).join(", ")};`);
  out.push(`${indent}}`);
  return out.join("\n");
}

const o = file.options!;
const lines = [
  `// Vendored from @bufbuild/protovalidate ${version} (npm), regenerated from the descriptor`,
  "// it embeds by scripts/vendor-validate-proto.ts. Do not edit by hand.",
  "//",
  "// Copyright 2023-2026 Buf Technologies, Inc.",
  "// Licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0).",
  "",
  `syntax = "proto2";`,
  "",
  `package ${file.package};`,
  "",
  ...file.dependency.map((d) => `import ${q(d)};`),
  "",
  o.goPackage ? `option go_package = ${q(o.goPackage)};` : "",
  o.javaMultipleFiles ? "option java_multiple_files = true;" : "",
  o.javaOuterClassname ? `option java_outer_classname = ${q(o.javaOuterClassname)};` : "",
  o.javaPackage ? `option java_package = ${q(o.javaPackage)};` : "",
  "",
];
const byExtendee = new Map<string, FieldDescriptorProto[]>();
for (const x of file.extension) byExtendee.set(x.extendee, [...(byExtendee.get(x.extendee) ?? []), x]);
for (const [extendee, xs] of byExtendee) {
  lines.push(`extend ${extendee.replace(/^\./, "")} {`);
  for (const x of xs) lines.push(printField(x, "  ", false));
  lines.push("}", "");
}
for (const m of file.messageType) lines.push(printMessage(m, ""), "");
for (const e of file.enumType) lines.push(printEnum(e, ""), "");

const dir = new URL("../proto/buf/validate/", import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL("validate.proto", dir), lines.filter((l, i, a) => !(l === "" && a[i - 1] === "")).join("\n"));
