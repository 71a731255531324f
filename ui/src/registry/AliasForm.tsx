import { FormEvent, useState } from "react";
import { ApiError, del, request } from "../api/client";
import { modelPath } from "../api/registry";

/** What a refusal says to a person: a 403 names the level the user lacks. */
export function refusal(e: unknown): string {
  if (e instanceof ApiError && e.status === 403)
    return `You may not change this: ${e.message}. Moving aliases needs MANAGE on the model.`;
  return e instanceof Error ? e.message : String(e);
}

/** Set an alias on a version (moving it if another version has it). */
export function AliasForm({ name, versions, onDone, refused = null }: { name: string; versions: number[]; onDone: () => void; refused?: string | null }) {
  const [alias, setAlias] = useState("");
  const [version, setVersion] = useState(String(versions[0] ?? ""));
  const [message, setMessage] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setMessage(null);
    try {
      await request("PUT", `${modelPath(name)}/aliases/${encodeURIComponent(alias.trim())}`, { version: Number(version) });
      setAlias("");
      onDone();
    } catch (err) {
      setMessage(refusal(err));
    }
  };
  return (
    <form className="toolbar" onSubmit={submit} aria-label="Set an alias">
      <label>
        Alias
        <input value={alias} onChange={(e) => setAlias(e.target.value)} required placeholder="champion" />
      </label>
      <label>
        on version
        <select value={version} onChange={(e) => setVersion(e.target.value)}>
          {versions.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" disabled={refused !== null} title={refused ?? undefined}>
        Set alias
      </button>
      {refused && <p className="muted">{refused}</p>}
      {message && (
        <p role="alert" className="error">
          {message}
        </p>
      )}
    </form>
  );
}

/** An alias badge with a button that removes it. */
export function AliasBadge({ name, alias, onDone, onError, refused = null }: { name: string; alias: string; onDone: () => void; onError: (m: string) => void; refused?: string | null }) {
  const remove = async () => {
    if (!window.confirm(`Remove alias @${alias} from ${name}?`)) return;
    try {
      await del(`${modelPath(name)}/aliases/${encodeURIComponent(alias)}`);
      onDone();
    } catch (err) {
      onError(refusal(err));
    }
  };
  return (
    <span className="badge alias">
      @{alias}
      <button type="button" className="small" aria-label={`Remove alias ${alias}`} onClick={remove} disabled={refused !== null} title={refused ?? undefined}>
        ×
      </button>
    </span>
  );
}
