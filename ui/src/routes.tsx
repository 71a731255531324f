// Every page and its stable URL. A new page is one file in pages/ and one line here (and a
// link in components/Layout.tsx when it belongs in the top navigation).
import { createBrowserRouter, Navigate } from "react-router-dom";
import { fromMlflowHash } from "./mlflowLinks";
import { Layout } from "./components/Layout";
import { ExperimentsPage } from "./pages/ExperimentsPage";
import { RunsPage } from "./pages/RunsPage";
import { RunPage } from "./pages/RunPage";
import { ComparePage } from "./pages/ComparePage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { ModelsPage } from "./pages/ModelsPage";
import { ModelPage } from "./pages/ModelPage";
import { ModelVersionPage } from "./pages/ModelVersionPage";
import { ModelComparePage } from "./pages/ModelComparePage";
import { DeploymentsPage } from "./pages/DeploymentsPage";
import { DeploymentPage } from "./pages/DeploymentPage";
import { JobsPage } from "./pages/JobsPage";
import { JobPage } from "./pages/JobPage";
import { EventsPage } from "./pages/EventsPage";
import { AuditPage } from "./pages/AuditPage";
import { OperationsPage } from "./pages/OperationsPage";

export const paths = {
  experiments: () => "/experiments",
  runs: (experimentIds: string[]) => `/experiments/${experimentIds.join(",")}/runs`,
  run: (runId: string, tab?: string) => `/runs/${runId}${tab ? `/${tab}` : ""}`,
  compare: (runIds: string[]) => `/compare?runs=${runIds.join(",")}`,
  models: () => "/models",
  model: (name: string) => `/models/${encodeURIComponent(name)}`,
  modelVersion: (name: string, version: number | string) => `/models/${encodeURIComponent(name)}/versions/${version}`,
  modelCompare: (name: string, versions: number[]) => `/models/${encodeURIComponent(name)}/compare?versions=${versions.join(",")}`,
  deployments: () => "/deployments",
  deployment: (name: string) => `/deployments/${encodeURIComponent(name)}`,
  jobs: () => "/jobs",
  job: (jobId: string) => `/jobs/${jobId}`,
  events: () => "/events",
  audit: () => "/audit",
  operations: () => "/operations",
};

/** The start page, or the page an MLflow link (`/#/experiments/1/runs/abc`) names. */
function Home() {
  return <Navigate to={fromMlflowHash(window.location.hash) ?? paths.experiments()} replace />;
}

export const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { path: "/", element: <Home /> },
      { path: "/experiments", element: <ExperimentsPage /> },
      { path: "/experiments/:experimentIds/runs", element: <RunsPage /> },
      { path: "/runs/:runId/:tab?", element: <RunPage /> },
      { path: "/compare", element: <ComparePage /> },
      { path: "/models", element: <ModelsPage /> },
      { path: "/models/:name", element: <ModelPage /> },
      { path: "/models/:name/versions/:version", element: <ModelVersionPage /> },
      { path: "/models/:name/compare", element: <ModelComparePage /> },
      { path: "/deployments", element: <DeploymentsPage /> },
      { path: "/deployments/:name", element: <DeploymentPage /> },
      { path: "/jobs", element: <JobsPage /> },
      { path: "/jobs/:jobId", element: <JobPage /> },
      { path: "/events", element: <EventsPage /> },
      { path: "/audit", element: <AuditPage /> },
      { path: "/operations", element: <OperationsPage /> },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);
