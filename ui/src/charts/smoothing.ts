/** TensorBoard's debiased exponential moving average; `weight` in [0, 1), 0 = raw. NaN and
 * infinite points are passed through and do not disturb the average. */
export function ema(values: number[], weight: number): number[] {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - Math.pow(weight, n));
  });
}
