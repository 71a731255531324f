import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { listDeployments, type Deployment } from "../api/deployments";
import { ErrorBox, Loading, StatusBadge } from "../components/Status";
import { formatTime } from "../components/format";
import { paths } from "../routes";
import { weightPercent } from "../deployments/roles";

/** Every deployment (A/B test) with its variants and split. URL: /deployments */
export function DeploymentsPage() {
  const [deployments, setDeployments] = useState<Deployment[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    listDeployments().then(setDeployments).catch(setError);
  }, []);
  if (error) return <ErrorBox error={error} />;
  if (!deployments) return <Loading what="deployments" />;
  return (
    <section aria-labelledby="deployments-title">
      <h1 id="deployments-title">Deployments</h1>
      {deployments.length === 0 ? (
        <p className="muted">No deployment yet (ledgerflow deployments create …).</p>
      ) : (
        <table className="grid experiments" aria-label="Deployments">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Split</th>
              <th scope="col">Baseline</th>
              <th scope="col">Last change</th>
            </tr>
          </thead>
          <tbody>
            {deployments.map((d) => (
              <tr key={d.name}>
                <td>
                  <Link to={paths.deployment(d.name)}>{d.name}</Link>
                </td>
                <td>
                  <StatusBadge status={d.status} />
                </td>
                <td>
                  {d.variants.map((v) => (
                    <span key={v.name} className="badge">
                      {v.name}: {v.shadow ? "shadow" : weightPercent(d, v.name)} ({v.model} v{v.version})
                    </span>
                  ))}
                </td>
                <td>{d.baseline}</td>
                <td>
                  {d.last_action} {formatTime(d.updated)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
