// What the signed-in user may do on one resource, so that a page offers only the actions
// the gateway would take from them (it checks every action again when it is taken).
import { useEffect, useState } from "react";
import { get, query } from "./client";

export type Level = "NO_PERMISSIONS" | "READ" | "EDIT" | "MANAGE";
export type Kind = "experiment" | "model" | "deployment" | "webhook";

const ORDER: Level[] = ["NO_PERMISSIONS", "READ", "EDIT", "MANAGE"];

export const atLeast = (have: Level, need: Level) => ORDER.indexOf(have) >= ORDER.indexOf(need);

/** The user's level on `kind` `key` (GET /permissions/mine): null until it is known, and
 * when it cannot be (the action is then offered, and a refusal says why). */
export function useMyLevel(kind: Kind, key: string): Level | null {
  const [level, setLevel] = useState<Level | null>(null);
  useEffect(() => {
    let live = true;
    setLevel(null);
    get<{ level: Level }>(`/permissions/mine${query({ kind, key })}`)
      .then((r) => live && setLevel(r.level))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [kind, key]);
  return level;
}

/** Why the user may not do what needs `need` on the resource, or null when they may (or it
 * is not known yet). */
export function lacking(level: Level | null, need: Level, what: string, on: string): string | null {
  if (level === null || atLeast(level, need)) return null;
  return `You have ${level} on ${on}: ${what} needs ${need}.`;
}
