// The shape deploy/grafana/muppet.json must have: Grafana's published dashboard schema types,
// with the Prometheus query fields the dashboard uses (the schema leaves a data source's query
// fields to the data source: DataQuery has only refId, datasource, hide and queryType).
import type { AnnotationQuery, Dashboard, DataQuery, Panel } from '@grafana/schema';

export interface PromQuery extends DataQuery {
  expr: string;
  legendFormat?: string;
  interval?: string;
}

export type MuppetPanel = Omit<Panel, 'targets'> & { targets: PromQuery[] };
export type MuppetAnnotation = Omit<AnnotationQuery, 'target'> & { target: PromQuery };
export type MuppetDashboard = Omit<Dashboard, 'panels' | 'annotations'> & {
  panels: MuppetPanel[];
  annotations: { list: MuppetAnnotation[] };
};
