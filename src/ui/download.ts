/** Saves generated data as a file download. */
export function saveFile (name: string, data: BlobPart, type: string): void {
  const a = document.createElement('a')
  a.href = URL.createObjectURL(new Blob([data], { type }))
  a.download = name
  a.click()
  setTimeout(() => { URL.revokeObjectURL(a.href) }, 1000)
}
