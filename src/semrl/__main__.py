from semrl.cli import main

main()
