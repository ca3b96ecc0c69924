// A @grpc/grpc-js service definition built from a protobuf-es service descriptor, so the server, the node
// daemon and tests share the one generated code base in gen/ (no proto-loader, no second codegen).

import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { type DescService, type Message, fromBinary, toBinary } from "@bufbuild/protobuf";

export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes) => fromBinary(method.input, bytes),
      responseSerialize: (message) => Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes) => fromBinary(method.output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}
