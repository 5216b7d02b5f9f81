import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { SETTINGS } from '@danmaku/config';
import { createLogger } from '@danmaku/observability';
import { REPO_ROOT, testConfig } from '@danmaku/testkit';
import { startStandalone, type Standalone } from '@danmaku/standalone';

/**
 * The monitoring that ships in ops/: the Prometheus alert rules pass promtool's check and their
 * unit tests (each alert fires on bad series and stays quiet on good ones), the scrape example
 * is a valid configuration for the roles' ports, and every metric the rules and the Grafana
 * dashboard query is one the running system exposes: a renamed metric fails here instead of
 * leaving an alert that can never fire.
 */

const PROMETHEUS_DIR = join(REPO_ROOT, 'ops', 'prometheus');
const RULES = join(PROMETHEUS_DIR, 'alerts.yml');
const RULE_TESTS = join(PROMETHEUS_DIR, 'alerts.test.yml');
const SCRAPE = join(PROMETHEUS_DIR, 'prometheus.yml');
const DASHBOARD = join(REPO_ROOT, 'ops', 'grafana', 'danmaku.json');

/** Prometheus's own series, present in any Prometheus without a target exposing them. */
const SYNTHETIC = new Set(['up']);
/** PromQL functions, aggregations, operators and modifiers: the words of an expression that are not metric names. */
const PROMQL_WORDS = new Set([
  'abs', 'absent', 'avg', 'avg_over_time', 'bottomk', 'ceil', 'changes', 'clamp_max', 'clamp_min', 'count', 'count_over_time',
  'delta', 'deriv', 'floor', 'histogram_quantile', 'idelta', 'increase', 'irate', 'label_replace', 'max', 'max_over_time', 'min',
  'min_over_time', 'predict_linear', 'quantile', 'quantile_over_time', 'rate', 'resets', 'round', 'scalar', 'sort', 'sort_desc',
  'stddev', 'sum', 'sum_over_time', 'time', 'topk', 'vector',
  'and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
]);

/**
 * The metric names an expression reads: label matchers, strings, ranges, grouping clauses and
 * Grafana variables are dropped, then every remaining identifier that is not a PromQL word.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const words = stripped.match(/(?<![\w.$])[a-zA-Z_:][\w:]*/g) ?? [];
  return [...new Set(words.filter((word) => !PROMQL_WORDS.has(word)))];
}

/** Names a /metrics text exposes, from its TYPE lines (series of a labelled metric may not exist yet). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    if (!name) continue;
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

function promtool(args: string[], cwd = PROMETHEUS_DIR): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 120_000 });
  if (result.error) throw new Error(`promtool could not run (npm test installs Debian's prometheus package): ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[] }[];
}

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  datasource?: { type?: string; uid?: string };
}
interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const rules = parse(readFileSync(RULES, 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((group) => group.rules.filter((rule): rule is Rule & { alert: string } => typeof rule.alert === 'string'));
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).filter((panel) => panel.type !== 'row');

describe('Prometheus alert rules (ops/prometheus)', () => {
  test('promtool check rules passes and counts every rule', () => {
    const checked = promtool(['check', 'rules', 'alerts.yml']);
    assert.equal(checked.status, 0, checked.output);
    const ruleCount = rules.groups.reduce((n, group) => n + group.rules.length, 0);
    assert.match(checked.output, new RegExp(`SUCCESS: ${ruleCount} rules found`));
    assert.ok(alerts.length >= 10, `alerts: ${alerts.map((a) => a.alert).join(', ')}`);
  });

  test('promtool test rules: the unit tests pass, and each alert is tested firing and quiet', () => {
    const tested = promtool(['test', 'rules', 'alerts.test.yml']);
    assert.equal(tested.status, 0, tested.output);
    const unitTests = parse(readFileSync(RULE_TESTS, 'utf8')) as RuleTests;
    assert.deepEqual(unitTests.rule_files, ['alerts.yml']);
    const cases = unitTests.tests.flatMap((group) => group.alert_rule_test ?? []);
    for (const { alert } of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert}: no case where it fires`);
      assert.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert}: no case where it stays quiet`);
    }
    const known = new Set(alerts.map((a) => a.alert));
    for (const c of cases) assert.ok(known.has(c.alertname), `the unit tests name an alert that does not exist: ${c.alertname}`);
  });

  test('the unit tests catch a rule that no longer fires (the check is real)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'danmaku-rules-'));
    try {
      cpSync(RULE_TESTS, join(dir, 'alerts.test.yml'));
      const text = readFileSync(RULES, 'utf8');
      const broken = text.replace('max by (group) (danmaku_bus_lag_records) > 10000', 'max by (group) (danmaku_bus_lag_records) > 1000000');
      assert.notEqual(broken, text, 'the lag rule is where this test expects it');
      writeFileSync(join(dir, 'alerts.yml'), broken);
      const tested = promtool(['test', 'rules', 'alerts.test.yml'], dir);
      assert.notEqual(tested.status, 0, tested.output);
      assert.match(tested.output, /DanmakuConsumerLagHigh/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the scrape example is a valid configuration and covers every role on its default port', () => {
    const checked = promtool(['check', 'config', 'prometheus.yml']);
    assert.equal(checked.status, 0, checked.output);
    const config = parse(readFileSync(SCRAPE, 'utf8')) as { rule_files: string[]; scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    assert.deepEqual(config.rule_files, ['alerts.yml']);
    const ports = new Map(config.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((s) => s.targets).map((t) => t.split(':').pop())]));
    // The process-level rules match jobs named danmaku*.
    for (const job of ports.keys()) assert.match(job, /^danmaku/);
    const defaults: Record<string, string> = {
      'danmaku-front': SETTINGS.port.default,
      'danmaku-connector': SETTINGS.connectorPort.default,
      'danmaku-router': SETTINGS.routerPort.default,
      'danmaku-processor': SETTINGS.processorPort.default,
      'danmaku-archiver': SETTINGS.archiverPort.default,
      'danmaku-pusher': SETTINGS.pusherPort.default,
    };
    for (const [job, port] of Object.entries(defaults)) assert.ok(ports.get(job)?.includes(port), `${job} scrapes port ${port}`);
  });
});

describe('Grafana dashboard (ops/grafana/danmaku.json)', () => {
  test('imports with a Prometheus data source variable that every panel and query uses', () => {
    assert.ok(dashboard.title && dashboard.uid);
    const variables = dashboard.templating.list;
    const datasource = variables.find((v) => v.type === 'datasource');
    assert.ok(datasource, 'a datasource variable');
    assert.equal(datasource.query, 'prometheus');
    const uses = `\${${datasource.name}}`;
    for (const variable of variables.filter((v) => v.type === 'query')) assert.equal(variable.datasource?.uid, uses, `variable ${variable.name}`);

    assert.ok(panels.length >= 15, `${panels.length} panels`);
    const ids = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const panel of panels) {
      assert.ok(panel.title, `panel ${panel.id} has a title`);
      assert.ok(panel.gridPos && panel.gridPos.w > 0 && panel.gridPos.h > 0 && panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title}: gridPos`);
      assert.equal(panel.datasource?.uid, uses, `${panel.title}: data source`);
      assert.ok(panel.targets && panel.targets.length > 0, `${panel.title}: has queries`);
      for (const target of panel.targets) {
        assert.ok(target.expr && target.expr.trim(), `${panel.title}: a query without an expression`);
        assert.equal(target.datasource?.uid, uses, `${panel.title}: query data source`);
      }
    }
  });

  test('every query is valid PromQL (promtool checks them as recording rules, variables filled in)', () => {
    const filled = (expr: string): string =>
      expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', 'danmaku.*').replaceAll('$instance', '.*');
    const queries = panels.flatMap((panel) => (panel.targets ?? []).map((target) => filled(target.expr ?? '')));
    assert.ok(queries.every((query) => !query.includes('$')), 'a variable the test does not fill in');
    const dir = mkdtempSync(join(tmpdir(), 'danmaku-dashboard-'));
    try {
      const file = { groups: [{ name: 'dashboard', rules: queries.map((expr, i) => ({ record: `dashboard:query${i}`, expr })) }] };
      writeFileSync(join(dir, 'queries.yml'), stringify(file));
      const checked = promtool(['check', 'rules', 'queries.yml'], dir);
      assert.equal(checked.status, 0, checked.output);
      assert.match(checked.output, new RegExp(`SUCCESS: ${queries.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metric names used by the rules and the dashboard', () => {
  let system: Standalone;
  let exposed: Set<string>;

  before(async () => {
    system = await startStandalone(testConfig(), createLogger('test', 'silent'));
    const res = await fetch(`${system.url}/metrics`);
    assert.equal(res.status, 200);
    exposed = exposedNames(await res.text());
  });

  after(async () => {
    await system?.stop();
  });

  test('the name extraction finds metric names and nothing else', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (le, op) (rate(a_seconds_bucket{job=~"$job", code!~"x|y"}[$__rate_interval]))) > 0.5'),
      ['a_seconds_bucket'],
    );
    assert.deepEqual(metricNames('sum(b) < 0.5 * sum(b offset 10m) and sum(c_total) > 1e3 or vector(0)'), ['b', 'c_total']);
    assert.deepEqual(metricNames('deriv(nodejs_heap_size_used_bytes{job=~"danmaku.*"}[30m]) * 60 > 1000000'), ['nodejs_heap_size_used_bytes']);
  });

  test('every name is exposed by the running system (histograms by their _bucket, _sum, _count)', () => {
    // The roles' own metrics and the process metrics every role has.
    assert.ok(exposed.has('danmaku_ingest_total') && exposed.has('process_resident_memory_bytes'), [...exposed].join(' '));
    assert.ok(exposed.has('danmaku_connector_emit_delay_seconds_bucket'), 'histogram suffixes');

    const used = new Map<string, string>();
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      for (const name of metricNames(rule.expr)) used.set(name, `rule ${rule.alert ?? rule.record}`);
    }
    for (const panel of panels) {
      for (const target of panel.targets ?? []) for (const name of metricNames(target.expr ?? '')) used.set(name, `panel "${panel.title}"`);
    }
    for (const variable of dashboard.templating.list) {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      const metric = query?.match(/^label_values\(\s*([a-zA-Z_:][\w:]*)/)?.[1];
      if (metric) used.set(metric, `variable ${variable.name}`);
    }
    assert.ok(used.size >= 20, `${used.size} names used`);
    const missing = [...used].filter(([name]) => !exposed.has(name) && !SYNTHETIC.has(name)).map(([name, where]) => `${name} (${where})`);
    assert.deepEqual(missing, [], 'names no running role exposes');
  });
});
