// gRPC server reflection (v1 and v1alpha, via @grpc/reflection) described from the protobuf-es generated
// descriptors of every served file and its imports. A proto-loader package definition would serve merged
// files without imports, which grpcurl and `buf curl` cannot resolve.

import { ReflectionService } from "@grpc/reflection";
import type * as grpc from "@grpc/grpc-js";
import { type DescFile, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import { file_registry_v1_registry } from "../../gen/registry/v1/registry_pb.js";

export function addReflection(server: grpc.Server): void {
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
  new ReflectionService(definition as unknown as ConstructorParameters<typeof ReflectionService>[0]).addToServer(server);
}
