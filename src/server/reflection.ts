import type { ConnectRouter } from "@connectrpc/connect";
import { untilDraining } from "./context.ts";
import { create, createFileRegistry, fromBinary, toBinary, type DescFile, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { descriptorSetBase64 } from "../../gen/descriptor_set.js";

/**
 * gRPC server reflection (v1 and v1alpha), answered from the descriptors
 * embedded in the generated code, so grpcurl and buf curl work with no proto
 * files at hand. Every file answer carries the file and its transitive imports.
 *
 * The descriptors served keep their source info (the proto comments), from
 * gen/descriptor_set.js (buf generate), so `grpcurl describe` prints the
 * documentation; protoc-gen-es strips it from the descriptors it embeds. A
 * file missing from that set is served from the embedded descriptor.
 */
export function registerReflection(router: ConnectRouter, files: GenFile[], serviceNames: string[]): void {
  // Dependencies first, as a FileDescriptorSet requires.
  const all = new Map<string, DescFile>();
  files.forEach((f) => withImports(f).forEach((d) => all.set(d.name, d)));
  const documented = documentedFiles();
  const registry = createFileRegistry(
    create(FileDescriptorSetSchema, { file: [...all.values()].map((f) => documented.get(f.proto.name) ?? f.proto) }),
  );
  const answer = (req: v1.ServerReflectionRequest) => respond(registry, serviceNames, req);

  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests, ctx) {
      for await (const req of untilAborted(requests, untilDraining(ctx))) yield answer(req);
    },
  });
  // v1alpha has the same messages under another package; convert through the wire format.
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests, ctx) {
      for await (const req of untilAborted(requests, untilDraining(ctx))) {
        const res = answer(req as unknown as v1.ServerReflectionRequest);
        yield res as unknown as v1alpha.ServerReflectionResponse;
      }
    },
  });
}

/** The descriptors with source info, by file name ("chat/v1/message.proto"). */
function documentedFiles(): Map<string, FileDescriptorProto> {
  const set = fromBinary(FileDescriptorSetSchema, Buffer.from(descriptorSetBase64, "base64"));
  return new Map(set.file.map((f) => [f.name, f]));
}

/**
 * The requests until the signal aborts. A reflection client (grpcurl) keeps
 * its stream open and idle; at shutdown the stream then ends at once with
 * OK instead of holding the node for the whole grace period.
 */
async function* untilAborted<T>(requests: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = requests[Symbol.asyncIterator]();
  let onAbort: () => void = () => {};
  const aborted = new Promise<IteratorResult<T>>((resolve) => {
    onAbort = () => resolve({ done: true, value: undefined });
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    for (;;) {
      const r = await Promise.race([it.next(), aborted]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    void it.return?.()?.catch?.(() => {});
  }
}

function withImports(file: DescFile): DescFile[] {
  const seen = new Map<string, DescFile>();
  // Post-order: every file comes after its imports.
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    f.dependencies.forEach(visit);
    seen.set(f.name, f);
  };
  visit(file);
  return [...seen.values()];
}

function fileResponse(file: DescFile): v1.ServerReflectionResponse["messageResponse"] {
  return {
    case: "fileDescriptorResponse",
    value: {
      $typeName: "grpc.reflection.v1.FileDescriptorResponse",
      fileDescriptorProto: withImports(file).map((f) => toBinary(FileDescriptorProtoSchema, f.proto)),
    },
  };
}

function notFound(what: string): v1.ServerReflectionResponse["messageResponse"] {
  return { case: "errorResponse", value: { $typeName: "grpc.reflection.v1.ErrorResponse", errorCode: 5, errorMessage: `${what} not found` } };
}

function fileOfSymbol(registry: FileRegistry, symbol: string): DescFile | undefined {
  const direct = registry.get(symbol);
  if (direct && "file" in direct) return direct.file;
  // A method ("pkg.Service.Method") or an enum value: look up the parent.
  const parent = registry.get(symbol.slice(0, symbol.lastIndexOf(".")));
  return parent && "file" in parent ? parent.file : undefined;
}

function respond(registry: FileRegistry, serviceNames: string[], req: v1.ServerReflectionRequest): v1.ServerReflectionResponse {
  let messageResponse: v1.ServerReflectionResponse["messageResponse"];
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      messageResponse = {
        case: "listServicesResponse",
        value: {
          $typeName: "grpc.reflection.v1.ListServiceResponse",
          service: serviceNames.map((name) => ({ $typeName: "grpc.reflection.v1.ServiceResponse", name })),
        },
      };
      break;
    case "fileByFilename": {
      const file = registry.getFile(r.value);
      messageResponse = file ? fileResponse(file) : notFound(`file ${r.value}`);
      break;
    }
    case "fileContainingSymbol": {
      const file = fileOfSymbol(registry, r.value);
      messageResponse = file ? fileResponse(file) : notFound(`symbol ${r.value}`);
      break;
    }
    case "fileContainingExtension": {
      const extendee = registry.getMessage(r.value.containingType);
      const ext = extendee ? registry.getExtensionFor(extendee, r.value.extensionNumber) : undefined;
      messageResponse = ext ? fileResponse(ext.file) : notFound(`extension ${r.value.extensionNumber} of ${r.value.containingType}`);
      break;
    }
    case "allExtensionNumbersOfType": {
      const msg = registry.getMessage(r.value);
      if (!msg) {
        messageResponse = notFound(`type ${r.value}`);
        break;
      }
      const numbers: number[] = [];
      for (const t of registry) if (t.kind === "extension" && t.extendee.typeName === r.value) numbers.push(t.number);
      messageResponse = {
        case: "allExtensionNumbersResponse",
        value: { $typeName: "grpc.reflection.v1.ExtensionNumberResponse", baseTypeName: r.value, extensionNumber: numbers },
      };
      break;
    }
    default:
      messageResponse = {
        case: "errorResponse",
        value: { $typeName: "grpc.reflection.v1.ErrorResponse", errorCode: 3, errorMessage: "unsupported request" },
      };
  }
  return { $typeName: "grpc.reflection.v1.ServerReflectionResponse", validHost: req.host, originalRequest: req, messageResponse };
}
