// A @grpc/grpc-js service definition built from a protobuf-es service descriptor, so the server, the node
// daemon and tests share the one generated code base in gen/ (no proto-loader, no second codegen).

import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { type DescService, type Message, fromBinary, toBinary } from "@bufbuild/protobuf";

/**
 * A request whose bytes are not valid protobuf binary for its message type. grpc-js answers INTERNAL when
 * a deserializer throws, as if the server were broken; a definition made with `malformedRequests: "value"`
 * hands the handler this instead, and the handler rejects it with INVALID_ARGUMENT.
 */
export class MalformedRequest {
  constructor(
    /** The message type expected, e.g. registry.v1.RegisterRequest. */
    readonly typeName: string,
    /** What the protobuf parser said, e.g. "premature EOF". */
    readonly reason: string,
  ) {}

  get message(): string {
    return `the request is not a valid ${this.typeName} in protobuf binary: ${this.reason}`;
  }
}

export interface ServiceDefinitionOptions {
  /**
   * What the server-side deserializer does with bytes that do not parse: "throw" (grpc-js then answers
   * INTERNAL), or "value" (the handler gets a MalformedRequest). Clients never deserialize requests.
   */
  readonly malformedRequests?: "throw" | "value";
}

export function grpcServiceDefinition(service: DescService, options: ServiceDefinitionOptions = {}): ServiceDefinition {
  const definition: Record<string, MethodDefinition<Message | MalformedRequest, Message>> = {};
  for (const method of service.methods) {
    const parse = (bytes: Buffer): Message | MalformedRequest => {
      if (options.malformedRequests !== "value") return fromBinary(method.input, bytes);
      try {
        return fromBinary(method.input, bytes);
      } catch (error) {
        return new MalformedRequest(method.input.typeName, error instanceof Error ? error.message : String(error));
      }
    };
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message) => Buffer.from(toBinary(method.input, message as Message)),
      requestDeserialize: parse,
      responseSerialize: (message) => Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes) => fromBinary(method.output, bytes),
      originalName: method.localName,
    };
  }
  return definition;
}
