/**
 * nnc/train's numeric core: losses, optimisers, clipping, schedules, optimiser state and dropout
 * masks, each exactly as PyTorch, on plain Float32Arrays keyed by weight name (docs/training.md).
 * Not tied to any executor: `createTrainer` (the contract in docs/training.md) composes these with a
 * model's `vjp`. Also the data side `nnc train` uses, which runs in a browser as well: JSON Lines
 * checked and batched (data.ts), seeded initial weights (init.ts) and the seeded generator (random.ts).
 */
export { computeLoss, LossError, type LossKind, type LossOptions, type LossResult, type Targets } from './losses.ts';
export { clipGradNorm, clipGradValue, createOptimizer, OptimizerError, type Optimizer, type OptimizerOptions, type Weights } from './optim.ts';
export { checkSchedule, learningRate, ScheduleError, type ScheduleOptions } from './schedule.ts';
export { encodeSafetensors, restoreOptimizerState, saveOptimizerState, StateError } from './state.ts';
export { dropoutMask, dropoutUniform } from './dropout.ts';
export { createTrainer, type Batch, type EvalResult, type StepResult, type Trainer, type TrainerOptions } from './trainer.ts';
export { batchOrder, DataError, inOrder, parseExamples, taskOf, toBatch, type Example, type Task, type TaskModel } from './data.ts';
export { initialWeights } from './init.ts';
export { Random, streamOf } from './random.ts';
