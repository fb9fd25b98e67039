/** Messages of the benchmark's baseline workflows (shared by the bench and its workflow bundle). */
import { defineSignal, defineUpdate } from '@temporalio/workflow';

export const noopUpdate = defineUpdate<number, [number]>('benchNoop');
export const stopSignal = defineSignal('benchStop');
