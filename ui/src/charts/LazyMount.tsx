import { ReactNode, useEffect, useRef, useState } from "react";

/** Renders `children` only once the placeholder has been scrolled near the viewport
 * (IntersectionObserver), so charts below the fold cost nothing until looked at. */
export function LazyMount({ height, children, label }: { height: number; children: ReactNode; label: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const [seen, setSeen] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el || seen) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          setSeen(true);
          observer.disconnect();
        }
      },
      { rootMargin: "200px" },
    );
    observer.observe(el);
    return () => observer.disconnect();
  }, [seen]);
  return (
    <div ref={ref} style={{ minHeight: height }} data-lazy={seen ? "drawn" : "waiting"}>
      {seen ? children : <span className="sr-only">{label} (drawn when scrolled into view)</span>}
    </div>
  );
}
