// Answers that arrive out of order: a page that asks again (a new search, a new filter, an
// event saying the list changed) must not have its newer answer overwritten by an older,
// slower one.
import { useCallback, useRef } from "react";

/** A function that passes an answer on only if no later one was asked for meanwhile; a
 * superseded answer (or its failure) is dropped: its promise never settles. */
export function useLatest(): <T>(answer: Promise<T>) => Promise<T> {
  const asked = useRef(0);
  return useCallback(<T,>(answer: Promise<T>) => {
    const mine = ++asked.current;
    return new Promise<T>((resolve, reject) => {
      answer.then(
        (value) => mine === asked.current && resolve(value),
        (error: unknown) => mine === asked.current && reject(error),
      );
    });
  }, []);
}
