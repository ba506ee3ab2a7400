export async function command(): Promise<number> { return 2; }
