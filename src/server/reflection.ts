// gRPC server reflection (v1 and v1alpha, via @grpc/reflection) described from the protobuf-es generated
// descriptors of every served file and its imports. A proto-loader package definition would serve merged
// files without imports, which grpcurl and `buf curl` cannot resolve.
// The library is loaded on the first reflection call, not at start-up: it brings protobufjs and parses its
// own .proto files, a fifth of the server's start. Both methods are registered at start with bytes in and
// out; a call waits for the library and then runs its handler through the library's own (de)serializers.

import { Duplex } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { type DescFile, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import { file_registry_v1_registry } from "../../gen/registry/v1/registry_pb.js";

const METHOD = "ServerReflectionInfo";
const SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

/** One reflection method as @grpc/reflection registers it: its (de)serializers and its handler. */
interface LoadedMethod {
  readonly definition: grpc.MethodDefinition<unknown, unknown>;
  readonly handler: grpc.handleBidiStreamingCall<unknown, unknown>;
}

const bytes = (value: Buffer): Buffer => value;

export function addReflection(server: grpc.Server): void {
  let loading: Promise<ReadonlyMap<string, LoadedMethod>> | undefined;
  for (const service of SERVICES) {
    const path = `/${service}/${METHOD}`;
    const definition: grpc.ServiceDefinition = {
      [METHOD]: {
        path,
        requestStream: true,
        responseStream: true,
        requestSerialize: bytes,
        requestDeserialize: bytes,
        responseSerialize: bytes,
        responseDeserialize: bytes,
      },
    };
    server.addService(definition, {
      [METHOD]: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        // Until the library is in, grpc-js keeps the call's requests: nothing reads them yet.
        const load = (loading ??= loadReflection());
        load.then((methods) => bridge(call, methods.get(path), path)).catch((error: unknown) => {
          // A failed load is tried again by the next call.
          if (loading === load) loading = undefined;
          call.emit("error", {
            code: grpc.status.INTERNAL,
            details: `server reflection failed (${(error as Error).message}); check that @grpc/reflection is installed (\`npm ci\`)`,
          });
        });
      },
    });
  }
}

/** Runs the library's handler on a stream of decoded messages whose answers are encoded onto the call. */
function bridge(call: grpc.ServerDuplexStream<Buffer, Buffer>, method: LoadedMethod | undefined, path: string): void {
  if (method === undefined) {
    call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: `${path} is not served by this version of @grpc/reflection` });
    return;
  }
  const { requestDeserialize, responseSerialize } = method.definition;
  // As the registry's own methods name a malformed message: grpc.reflection.v1.ServerReflectionRequest.
  const requestType = `${path.split("/")[1] ?? ""}Request`;
  const messages = new Duplex({
    objectMode: true,
    read: () => undefined,
    write: (message: unknown, _encoding, done) => {
      try {
        call.write(responseSerialize(message), done);
      } catch (error) {
        done(error as Error);
      }
    },
    final: (done) => {
      call.end();
      done();
    },
  });
  messages.on("error", (error) => call.emit("error", { code: grpc.status.INTERNAL, details: `server reflection failed: ${error.message}` }));
  // A client that goes away takes the library's side of the call with it.
  call.on("cancelled", () => messages.destroy());
  // The call's own accessors (peer, metadata, deadline, ...) on the stream of decoded messages.
  const stream = Object.assign(messages, {
    metadata: call.metadata,
    getPeer: () => call.getPeer(),
    getDeadline: () => call.getDeadline(),
    getPath: () => call.getPath(),
    getHost: () => call.getHost(),
    getAuthContext: () => call.getAuthContext(),
    getMetricsRecorder: () => call.getMetricsRecorder(),
    sendMetadata: (metadata: grpc.Metadata) => call.sendMetadata(metadata),
  });
  Object.defineProperty(stream, "cancelled", { get: () => call.cancelled });
  method.handler(stream as unknown as grpc.ServerDuplexStream<unknown, unknown>);
  call.on("data", (request: Buffer) => {
    let message: unknown;
    try {
      message = requestDeserialize(request);
    } catch (error) {
      call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `the request is not a valid ${requestType} in protobuf binary: ${(error as Error).message}` });
      return;
    }
    messages.push(message);
  });
  call.on("end", () => messages.push(null));
}

async function loadReflection(): Promise<ReadonlyMap<string, LoadedMethod>> {
  const { ReflectionService } = await import("@grpc/reflection");
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  [file_registry_v1_registry, file_grpc_health_v1_health].forEach(visit);
  const fileDescriptorProtos = [...files.values()].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  // @grpc/reflection reads only `fileDescriptorProtos` from the package definition's entries.
  const definition = { files: { format: "Protocol Buffer 3 FileDescriptorProto", fileDescriptorProtos } };
  const methods = new Map<string, LoadedMethod>();
  // The library adds its services to a server; this one only keeps what it is given.
  const keeper = {
    addService: (service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation) => {
      for (const [name, method] of Object.entries(service)) {
        methods.set(method.path, { definition: method, handler: implementation[name] as LoadedMethod["handler"] });
      }
    },
  };
  new ReflectionService(definition as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(keeper as unknown as grpc.Server);
  return methods;
}
