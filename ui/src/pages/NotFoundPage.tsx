import { Link } from "react-router-dom";

export function NotFoundPage() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        Nothing lives at this address. Go to the <Link to="/experiments">experiments</Link>.
      </p>
    </section>
  );
}
