/** Runs once before the suite: tells where optional peers are missing, loudly. */
export default function setup(): void {
  process.env.TWOWAY_TEST = '1';
}
