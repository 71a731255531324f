import { NavLink, Outlet } from "react-router-dom";

/** The frame of every page: a skip link, the top navigation and the page itself. */
export function Layout() {
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <NavLink to="/experiments" className="brand">
          Ledgerflow
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/experiments">Experiments</NavLink>
          <NavLink to="/models">Models</NavLink>
          <NavLink to="/deployments">Deployments</NavLink>
          <NavLink to="/jobs">Jobs</NavLink>
          <NavLink to="/events">Events</NavLink>
          <NavLink to="/audit">Audit</NavLink>
          <NavLink to="/operations">Operations</NavLink>
          <a href="/docs">API</a>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
