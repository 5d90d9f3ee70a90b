'use strict'
// child_process IPC baselines: the orchestrator is the parent that sends (process.send with
// the default JSON serialisation); these are the children.
const { runRole, Meter } = require('../lib/role')

runRole({
  async listener() {
    const meter = new Meter()
    return {
      data: (event) => meter.record(event.i),
      // Commands come down the same channel as the events, behind them: every event is in.
      finish: () => meter.report()
    }
  },

  async echo() {
    return { data: (message) => process.send(message) }
  }
})
