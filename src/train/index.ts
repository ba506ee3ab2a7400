/**
 * nnc/train's numeric core: losses, optimisers, clipping, schedules, optimiser state and dropout
 * masks, each exactly as PyTorch, on plain Float32Arrays keyed by weight name (docs/training.md).
 * Not tied to any executor: `createTrainer` (the contract in docs/training.md) composes these with a
 * model's `vjp`.
 */
export { computeLoss, LossError, type LossKind, type LossOptions, type LossResult, type Targets } from './losses.ts';
export { clipGradNorm, clipGradValue, createOptimizer, OptimizerError, type Optimizer, type OptimizerOptions, type Weights } from './optim.ts';
export { checkSchedule, learningRate, ScheduleError, type ScheduleOptions } from './schedule.ts';
export { encodeSafetensors, restoreOptimizerState, saveOptimizerState, StateError } from './state.ts';
export { dropoutMask, dropoutUniform } from './dropout.ts';
export { createTrainer, type Batch, type EvalResult, type StepResult, type Trainer, type TrainerOptions } from './trainer.ts';
