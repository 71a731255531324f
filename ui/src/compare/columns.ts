import { num } from "../api/client";
import type { Run } from "../api/types";
import { formatValue } from "../components/format";

/** One param or metric across the compared runs: its text per run (for the diff table)
 * and a number per run (for the plots): the value itself when every run's is a number,
 * else the index of the value among the column's sorted distinct values (a category). */
export interface Column {
  key: string;
  texts: string[];
  numbers: (number | null)[];
  categories: string[] | null;
  differs: boolean;
}

function column(key: string, raw: (string | number | undefined)[]): Column {
  const texts = raw.map((v) => (v === undefined ? "" : typeof v === "number" ? formatValue(v) : v));
  const present = raw.filter((v) => v !== undefined);
  const numeric = present.every((v) => typeof v === "number" || (v.trim() !== "" && Number.isFinite(Number(v))));
  let numbers: (number | null)[];
  let categories: string[] | null = null;
  if (numeric) {
    numbers = raw.map((v) => (v === undefined ? null : typeof v === "number" ? num(v) : Number(v)));
  } else {
    categories = [...new Set(present.map(String))].sort();
    numbers = raw.map((v) => (v === undefined ? null : categories!.indexOf(String(v))));
  }
  return { key, texts, numbers, categories, differs: new Set(texts).size > 1 };
}

export function columnsOf(runs: Run[]): Column[] {
  const keys = (kind: "params" | "metrics") => [...new Set(runs.flatMap((r) => Object.keys(r.data[kind])))].sort();
  return [
    ...keys("params").map((k) => column(`params.${k}`, runs.map((r) => r.data.params[k]))),
    ...keys("metrics").map((k) => column(`metrics.${k}`, runs.map((r) => r.data.metrics[k]))),
  ];
}

export const COLORS = ["#1f6feb", "#d9480f", "#2b8a3e", "#9c36b5", "#c92a2a", "#0b7285", "#5f3dc4", "#e67700"];
