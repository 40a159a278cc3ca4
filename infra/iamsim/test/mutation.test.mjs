/**
 * The evaluator's power to catch a removed grant or condition, shown on every run (a mutation test of the
 * policies): for each statement of each role's identity policy (the three functions' roles and the task role's
 * managed policy), and for each condition of each statement (one operator and key at a time), the statement or
 * condition is removed from the policies the evaluator reads, and every case of cases.mjs (the cases
 * iam.test.mjs runs) is run against that deployment; at least one must then fail. A removal no case notices
 * either gets a case (cases.mjs) or is listed in NOT_OBSERVABLE with the reason no request can show it; a listed
 * removal that some case does notice fails too, so the list stays exact.
 *
 * A mutant is tried on the deployments that hold it (raw SAM, transformed SAM, CDK; every scenario of
 * infra/tests/iamsim_export.py) in turn, until a case fails; a survivor runs every case of every deployment.
 *
 * Run by infra/validate.sh (step "IAM evaluator"); by hand after it: cd infra/iamsim && npm test.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { casesFor } from './cases.mjs';
import { OTHER_TASK, deployments, queuePolicies } from './lib.mjs';

/** Removals no case can notice, each with the reason (none today: every statement and condition is observed). */
const NOT_OBSERVABLE = {};

const DEPLOYMENTS = deployments().map((d) => ({ d, policies: queuePolicies(d, [d.taskId, OTHER_TASK]) }));

/** Every mutant: id → [{ d, policies, mutated }] (the deployments holding it, each with the mutated copy). */
function mutants() {
  const out = new Map();
  const add = (id, d, policies, mutate) => {
    const mutated = structuredClone(d);
    mutate(mutated);
    if (!out.has(id)) {
      out.set(id, []);
    }
    out.get(id).push({ d, policies, mutated });
  };
  for (const { d, policies } of DEPLOYMENTS) {
    for (const [role, { statements }] of Object.entries(d.roles)) {
      statements.forEach((st, i) => {
        assert.ok(st.Sid, `${d.template} ${d.scenario} ${role}: statement ${i} has no Sid to name it by`);
        add(`${role} ${st.Sid}`, d, policies, (m) => m.roles[role].statements.splice(i, 1));
        for (const [op, keys] of Object.entries(st.Condition ?? {})) {
          for (const key of Object.keys(keys)) {
            add(`${role} ${st.Sid} condition ${op} ${key}`, d, policies, (m) => {
              const cond = m.roles[role].statements[i].Condition;
              delete cond[op][key];
              if (Object.keys(cond[op]).length === 0) {
                delete cond[op];
              }
              if (Object.keys(cond).length === 0) {
                delete m.roles[role].statements[i].Condition;
              }
            });
          }
        }
      });
    }
  }
  return out;
}

/** The first case that fails on the mutated deployments ("template / scenario: case: message"), or null. */
async function firstFailure(holders) {
  for (const { mutated, policies } of holders) {
    for (const c of casesFor(mutated, policies)) {
      try {
        await c.run();
      } catch (e) {
        return `${mutated.template} / ${mutated.scenario}: ${c.name}: ${String(e.message).split('\n')[0]}`;
      }
    }
  }
  return null;
}

describe('each identity statement and condition removed fails some evaluator case (mutation test)', () => {
  const all = mutants();

  it('the policies hold statements and conditions to remove, and NOT_OBSERVABLE names only real ones', () => {
    assert.ok(all.size >= 40, `only ${all.size} mutants`);
    assert.ok([...all.keys()].filter((id) => id.includes(' condition ')).length >= 10);
    for (const id of Object.keys(NOT_OBSERVABLE)) {
      assert.ok(all.has(id), `NOT_OBSERVABLE names ${id}, which no policy holds`);
    }
  });

  it('the unmutated deployments pass every case (a failure below is the removal\'s)', async () => {
    assert.equal(await firstFailure(DEPLOYMENTS.map(({ d, policies }) => ({ mutated: d, policies }))), null);
  });

  for (const [id, holders] of all) {
    const reason = NOT_OBSERVABLE[id];
    it(reason ? `removing ${id} is not observable: ${reason}` : `removing ${id} fails a case`, async () => {
      const failure = await firstFailure(holders);
      if (reason) {
        assert.equal(failure, null, `${id} is listed as not observable, but a case notices its removal: ${failure}`);
      } else {
        assert.ok(failure, `${id} removed from the policies (${holders.length} deployments) and every case still passes`);
      }
    });
  }
});
