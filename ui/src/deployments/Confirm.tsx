import { useEffect, useRef } from "react";

/** An inline confirmation before an action that changes live traffic. */
export function Confirm({ question, onYes, onNo }: { question: string; onYes: () => void; onNo: () => void }) {
  const yes = useRef<HTMLButtonElement>(null);
  useEffect(() => yes.current?.focus(), []);
  return (
    <div role="alertdialog" aria-label="Confirm" aria-describedby="confirm-question" className="confirm">
      <p id="confirm-question">{question}</p>
      <button ref={yes} type="button" onClick={onYes}>
        Confirm
      </button>{" "}
      <button type="button" onClick={onNo}>
        Cancel
      </button>
    </div>
  );
}
