/** What the fuzz saw of one class of input: answers by status, and those out of the error shape. */
export interface ClassCounts {
  requests: number;
  answers: number;
  inShape: number;
  ok2xx: number;
  client4xx: number;
  server5xx: number;
  /** Closed with no answer (raw bytes: allowed when the connection ended mid-request). */
  noAnswer: number;
  /** Answers that were a 4xx but not `{ error: { code, message } }`, with a sample. */
  outOfShape: number;
  samples: string[];
}
