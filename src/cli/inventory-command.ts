// `agent-registry inventory`: collects what this node's daemon would report (nvidia-smi, Ollama's models at its
// configured URL), prints it as JSON (the registry.v1 Inventory in its JSON form) and exits. Problems go to
// stderr as the daemon would log them; the command still prints what it found.

import { toJsonString } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { pino } from "pino";
import { InventorySchema } from "../../gen/registry/v1/registry_pb.js";
import { InventoryCollector } from "../agent/inventory-collector.js";
import { inventoryToWire } from "../common/inventory-wire.js";
import { loadAgentConfig } from "../config/index.js";
import { addSettingOptions, givenFlags } from "./setting-options.js";

export function addInventoryCommand(program: Command): void {
  const command = program
    .command("inventory")
    .description("print, as JSON, the inventory (GPUs from nvidia-smi, models from Ollama) this node's daemon would report, and exit");
  addSettingOptions(command, "agent").action(async (_options: unknown, self: Command) => {
    const config = loadAgentConfig(process.env, givenFlags(self, "agent"));
    const log = pino({ level: config.logLevel, base: { service: "agent-registry-inventory" } }, pino.destination(2));
    const inventory = await new InventoryCollector({ ollamaUrl: config.ollamaUrl, log }).collect();
    process.stdout.write(`${toJsonString(InventorySchema, inventoryToWire(inventory), { prettySpaces: 2, alwaysEmitImplicit: true })}\n`);
  });
}
