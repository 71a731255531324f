import { FormEvent, useEffect, useState } from "react";
import { ApiError } from "../api/client";

/** The search-language filter (`metrics.acc > 0.9 and params.lr = '0.01'`); a refused
 * filter's message is shown with a mark under the character at its position. */
export function FilterBox({ value, onApply, error }: { value: string; onApply: (f: string) => void; error: unknown }) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onApply(text.trim());
  };
  const filterError = error instanceof ApiError && error.field === "filter" ? error : null;
  return (
    <form className="filter" onSubmit={submit} role="search" aria-label="Search runs">
      <label htmlFor="run-filter">Filter runs</label>
      <div className="filter-row">
        <input
          id="run-filter"
          className="mono"
          value={text}
          spellCheck={false}
          placeholder="metrics.accuracy > 0.9 and params.lr = '0.01'"
          aria-invalid={filterError !== null}
          aria-describedby={filterError ? "filter-error" : undefined}
          onChange={(e) => setText(e.target.value)}
        />
        <button type="submit">Apply</button>
        {value && (
          <button type="button" onClick={() => onApply("")}>
            Clear
          </button>
        )}
      </div>
      {filterError && (
        <div id="filter-error" role="alert" className="filter-error">
          <p>{filterError.message}</p>
          {filterError.position !== null && (
            <ErrorMark text={value} position={filterError.position} length={Math.max(1, filterError.token?.length ?? 1)} />
          )}
        </div>
      )}
    </form>
  );
}

/** The filter with the refused token marked, and a caret line under it. */
function ErrorMark({ text, position, length }: { text: string; position: number; length: number }) {
  const at = Math.min(position, text.length);
  return (
    <pre className="mono error-mark" aria-label={`error at position ${position}`} data-position={position}>
      {text.slice(0, at)}
      <mark>{text.slice(at, at + length) || " "}</mark>
      {text.slice(at + length)}
      {"\n"}
      {" ".repeat(at)}
      {"^".repeat(length)}
    </pre>
  );
}
