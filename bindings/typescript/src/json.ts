// Calls by method name on protojson (JSON) requests and responses: for generic tools and
// the shared conformance scenarios. Enum values may be given by their full name
// ("LIFECYCLE_STATE_ACTIVE") or the specification's short one ("ACTIVE"), as in the C ABI.
import { fromJson, toJson, type DescEnum, type DescMessage, type DescMethod, type JsonValue } from "@bufbuild/protobuf";
import { LifecycleManager as Svc } from "./gen/hms/agent/lifecycle/v1/lifecycle_manager_pb.js";
import { PluginLifecycleManager as PluginSvc } from "./gen/hms/plugin/lifecycle/v1/plugin_lifecycle_pb.js";
import { invalidArgument } from "./errors.js";

/** A method of either service by its full name ("hms.agent.lifecycle.v1.LifecycleManager/
 * GetState"), or its short name ("GetState"; agents first). */
export function findMethod(name: string): DescMethod {
  const n = name.replace(/^\//, "");
  for (const svc of [Svc, PluginSvc]) {
    for (const m of svc.methods) {
      if (n === m.name || n === `${svc.typeName}/${m.name}`) return m;
    }
  }
  throw invalidArgument(`unknown method "${name}"`);
}

function enumValue(e: DescEnum, v: JsonValue): JsonValue {
  if (typeof v !== "string" || e.values.some((x) => x.name === v)) return v;
  const full = `${(e.sharedPrefix ?? "").toUpperCase()}${v}`;
  return e.values.some((x) => x.name === full) ? full : v;
}

/** Rewrites short enum names to full ones, by the message's descriptor. */
export function normalize(desc: DescMessage, json: JsonValue): JsonValue {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return json;
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(json)) {
    const f = desc.fields.find((x) => x.jsonName === k || x.name === k);
    if (f === undefined || v === undefined) {
      out[k] = v;
      continue;
    }
    switch (f.fieldKind) {
      case "enum":
        out[k] = enumValue(f.enum, v);
        break;
      case "message":
        out[k] = normalize(f.message, v);
        break;
      case "list":
        out[k] = Array.isArray(v)
          ? v.map((x) => (f.listKind === "enum" ? enumValue(f.enum, x) : f.listKind === "message" ? normalize(f.message, x) : x))
          : v;
        break;
      case "map":
        if (v !== null && typeof v === "object" && !Array.isArray(v)) {
          const m: Record<string, JsonValue> = {};
          for (const [mk, mv] of Object.entries(v)) {
            m[mk] = f.mapKind === "enum" ? enumValue(f.enum, mv) : f.mapKind === "message" ? normalize(f.message, mv) : (mv);
          }
          out[k] = m;
        } else out[k] = v;
        break;
      default:
        out[k] = v;
    }
  }
  return out;
}

export function decodeJson(desc: DescMessage, json: JsonValue) {
  try {
    return fromJson(desc, normalize(desc, json));
  } catch (e) {
    throw invalidArgument(`request (${desc.typeName}): ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function encodeJson(desc: DescMessage, msg: Parameters<typeof toJson>[1]): JsonValue {
  return toJson(desc, msg);
}
